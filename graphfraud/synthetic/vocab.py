"""Word lists the synthetic population draws from: names, email domains, typos, IP ranges.

Lists are ordered roughly by popularity; the generator draws from them with Zipf-like weights, so a
few names (Rahul, Priya, Sharma, Kumar) are very common, as in real Indian sign-up data. That is the
point: many unrelated honest people end up with similar emails, so "similar email" alone is weak
evidence.
"""

from __future__ import annotations

MALE_FIRST = """
rahul amit rohit vikram sanjay suresh rajesh ramesh anil sunil manoj vijay ajay arun ashok
deepak pradeep sandeep mukesh rakesh dinesh naveen praveen mahesh ganesh abhishek aditya akash
ankit ankur arjun aman ravi kiran gaurav harsh karan kunal mohit nikhil nitin pankaj prakash
pramod rajiv sachin saurabh shubham siddharth sumit tarun varun vivek yash yogesh akshay alok
anand anuj arvind ashish bharat chetan devendra dhruv gopal hari hemant jagdish jatin kamal
kartik krishna lalit lokesh manish mayank mohan nagesh narendra naresh neeraj om paras pawan
piyush prashant raghav raj rajat ritesh rohan sahil sameer santosh satish shankar shivam shyam
subhash sudhir sunny tushar uday umesh vinay vinod vishal yogendra mohammed mohd imran irfan
salman faisal asif arif javed sohail zaid aamir tariq shahid wasim farhan gurpreet harpreet
manpreet jaspreet amandeep navdeep harjeet balwinder kuldeep sukhwinder venkatesh srinivas
ramakrishna subramanian balaji murali karthik senthil vignesh prabhu saravanan arumugam
selvam madhavan rajendra chandrasekhar gopinath ravindra srikanth sriram lakshman anirban
sourav debashish subhajit arijit sayan abhijit partha tanmoy soumya biswajit pritam joydeep
rishi ishaan vihaan aarav reyansh ayaan kabir advait atharv dev krish parth veer yuvraj
omkar swapnil tejas aniket pratik vaibhav nilesh sagar mangesh tushant chirag jignesh hitesh
bhavesh kalpesh nirav parag darshan ketan mitesh paresh joseph thomas george john mathew
abraham francis antony sebastian jacob
"""

FEMALE_FIRST = """
priya pooja neha anjali sneha divya kavita sunita anita geeta rekha seema meena shalini
swati nisha ritu preeti jyoti deepika shweta aarti komal kajal sonia payal rani sapna
monika manisha megha ankita shruti shikha sakshi tanvi tanya riya ishita isha aditi
ananya diya kriti nidhi pallavi radhika rashmi ruchi sarika simran sonal sushma trisha
uma usha vandana varsha vidya yamini aishwarya akanksha alka amrita anamika archana asha
bhavana chitra damini esha gayatri harini hema indu jaya jasmine juhi kalpana kamala
kirti lakshmi lata madhuri mamta mansi meera minakshi namrata neelam nikita padma parul
poonam prachi pragya pratibha rachna rajni ranjana renu roshni rupali sadhana sangeeta
saroj shilpa shobha shraddha smita sudha suman supriya surbhi sweta tanuja tulsi vaishali
veena vinita fatima ayesha zoya sana farah nazia rukhsar shabana shazia heena mehak
gurleen harleen jasleen navneet manjeet simranjit kavya lavanya meenakshi revathi
saranya keerthi divyashree sowmya bhavya harshitha sahana nandini anusha swathi madhavi
sravani tejaswini mounika sirisha pavithra ramya priyanka shreya sayani moumita tanushree
paromita riddhi debjani sohini rupa mitali aparna arpita ishani myra aadhya saanvi anika
pari kiara navya avni sara mary elizabeth susan annie reshma sherin
"""

LAST = """
sharma kumar singh verma gupta yadav patel shah jain agarwal mishra pandey tiwari dubey
chauhan rajput thakur reddy rao naidu nair menon pillai iyer iyengar krishnan subramaniam
das dutta ghosh bose banerjee chatterjee mukherjee chakraborty sen roy saha mondal paul
sarkar biswas khan sheikh ansari qureshi siddiqui syed hussain ahmed ali malik mirza
mehta desai joshi kulkarni deshpande patil pawar jadhav shinde more kale gaikwad chavan
bhosale salunkhe naik gowda hegde shetty kamath pai bhat prabhu kaur gill sandhu dhillon
sidhu grewal brar bajwa randhawa sodhi arora kapoor khanna malhotra chopra bhatia sethi
mehra anand bhalla ahuja bakshi chawla grover kohli luthra oberoi saxena srivastava
shukla tripathi awasthi bajpai chaturvedi dwivedi trivedi upadhyay pathak tewari
rastogi goel bansal mittal singhal garg goyal aggarwal khandelwal maheshwari jindal
bhardwaj vashisht kaushik sinha prasad choudhary chaudhary jha thakkar modi parikh
trivedi soni rathod solanki parmar vaghela chaudhari barot bhatt vyas dave pandya
raval acharya murthy shastri rangan venkataraman swamy gopalan srinivasan raman
natarajan balasubramanian ramachandran sundaram ganesan karthikeyan mohan babu
varghese thomas joseph george mathew kurian jacob chacko abraham fernandes dsouza
pereira rodrigues gomes lobo pinto saldanha mascarenhas dias tandon bedi walia
nagpal taneja wadhwa sachdeva sabharwal kalra puri mahajan gulati dhawan narang
bhandari rawat negi bisht joshi pant bhatnagar mathur kayastha nigam asthana
tomar bhadoria rana chandel sisodia rathore shekhawat bhati hada meena
"""

# Short forms people put in emails instead of the full first name.
NICKNAMES: dict[str, str] = {
    "abhishek": "abhi",
    "aditya": "adi",
    "siddharth": "sid",
    "venkatesh": "venky",
    "mohammed": "md",
    "mohd": "md",
    "rajesh": "raju",
    "ramesh": "ramu",
    "krishna": "kittu",
    "vikram": "vicky",
    "sandeep": "sandy",
    "gurpreet": "guri",
    "harpreet": "harry",
    "jaspreet": "jassi",
    "manpreet": "mani",
    "srinivas": "srini",
    "subramanian": "subbu",
    "balaji": "bala",
    "karthik": "karthi",
    "shubham": "shubh",
    "saurabh": "sonu",
    "priyanka": "pinky",
    "deepika": "deepu",
    "aishwarya": "ash",
    "lakshmi": "lux",
    "elizabeth": "liz",
    "anjali": "anju",
    "kavita": "kavi",
    "shalini": "shalu",
    "madhuri": "madhu",
    "pallavi": "palli",
    "sushma": "sush",
    "rajendra": "raju",
    "ravindra": "ravi",
    "chandrasekhar": "chandu",
    "ramakrishna": "rk",
    "joseph": "joe",
    "sebastian": "seb",
    "francis": "frank",
    "anirban": "ani",
    "debashish": "deb",
}

# Honest email providers with rough market shares (India, consumer sign-ups).
HONEST_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.com", 0.62),
    ("yahoo.co.in", 0.06),
    ("yahoo.com", 0.055),
    ("rediffmail.com", 0.045),
    ("outlook.com", 0.045),
    ("hotmail.com", 0.035),
    ("icloud.com", 0.02),
    ("ymail.com", 0.01),
    ("live.com", 0.01),
    ("yahoo.in", 0.008),
    ("protonmail.com", 0.004),
    ("zoho.com", 0.004),
    ("aol.com", 0.002),
    ("googlemail.com", 0.002),
    ("rediff.com", 0.002),
    ("outlook.in", 0.003),
    ("tcs.com", 0.008),
    ("infosys.com", 0.007),
    ("wipro.com", 0.006),
    ("hcl.com", 0.004),
    ("accenture.com", 0.005),
    ("cognizant.com", 0.005),
    ("techmahindra.com", 0.003),
    ("capgemini.com", 0.003),
    ("ibm.com", 0.002),
    ("iitb.ac.in", 0.001),
    ("du.ac.in", 0.001),
    ("sbi.co.in", 0.001),
    ("nic.in", 0.001),
    ("airtelmail.in", 0.001),
)

# Misspelled provider domains. Honest users hit these by accident (rarely); typo-squat rings
# register the same local part on many of them on purpose.
TYPO_DOMAINS: tuple[str, ...] = (
    "gmial.com",
    "gmail.co",
    "gmaill.com",
    "gamil.com",
    "gmai.com",
    "gnail.com",
    "gmail.con",
    "gmal.com",
    "gmail.cm",
    "gmsil.com",
    "gmail.om",
    "gmail.in",
    "gmailcom.com",
    "yaho.com",
    "yahooo.com",
    "yahoo.co",
    "yaoo.com",
    "hotmial.com",
    "hotmai.com",
    "outlok.com",
    "rediffmial.com",
    "redifmail.com",
)

# Prefixes that look like Indian ISP address space (made up as full addresses; only the shape
# matters). Mobile carriers put thousands of subscribers behind one CGNAT address.
MOBILE_PREFIXES: tuple[str, ...] = (
    "49.36",
    "49.37",
    "49.43",
    "157.32",
    "157.34",
    "157.35",
    "157.38",
    "157.48",
    "106.193",
    "106.195",
    "106.198",
    "106.205",
    "106.207",
    "106.210",
    "223.176",
    "223.178",
    "223.182",
    "223.185",
    "223.187",
    "223.189",
    "27.97",
    "42.105",
    "42.106",
    "42.108",
    "117.96",
    "117.97",
)
BROADBAND_PREFIXES: tuple[str, ...] = (
    "122.161",
    "122.162",
    "122.167",
    "122.170",
    "122.171",
    "122.172",
    "122.174",
    "122.176",
    "117.193",
    "117.196",
    "117.200",
    "117.205",
    "117.211",
    "117.214",
    "59.88",
    "59.89",
    "59.92",
    "59.94",
    "59.95",
    "59.96",
    "182.64",
    "182.65",
    "182.68",
    "182.69",
    "182.70",
    "182.72",
    "182.73",
    "182.74",
    "182.75",
    "182.76",
    "182.77",
    "103.21",
    "103.27",
    "103.42",
    "103.59",
    "103.77",
    "103.85",
    "103.92",
    "103.104",
    "103.120",
    "14.139",
    "14.140",
    "14.141",
    "14.142",
    "14.143",
)
# Cloud / VPN exits: where farms and scripted sign-ups come from.
DATACENTER_PREFIXES: tuple[str, ...] = (
    "13.232",
    "13.233",
    "13.234",
    "13.235",
    "3.6",
    "3.7",
    "3.108",
    "3.109",
    "65.0",
    "65.1",
    "139.59",
    "143.110",
    "165.22",
    "159.65",
    "159.89",
    "68.183",
    "45.79",
    "172.105",
    "192.46",
    "185.220",
    "185.107",
    "45.134",
    "91.245",
    "104.28",
    "103.152",
)
# Reliance Jio hands out IPv6 to most handsets: one /64 per handset, so rarely shared.
JIO_V6_PREFIXES: tuple[str, ...] = (
    "2409:4040",
    "2409:4041",
    "2409:4050",
    "2409:4052",
    "2409:4060",
    "2409:4063",
    "2409:4070",
    "2409:4071",
    "2409:4080",
    "2409:4088",
    "2409:40c0",
    "2409:40f2",
)

# Device ids that many unrelated devices report: iOS with tracking limited, a well-known buggy
# Android build id, SDK placeholders. Real exports are full of these hubs.
PLACEHOLDER_DEVICE_IDS: tuple[tuple[str, float], ...] = (
    ("00000000-0000-0000-0000-000000000000", 0.7),
    ("9774d56d682e549c", 0.15),
    ("unknown", 0.1),
    ("0000000000000000", 0.05),
)

# Sequential-email bases that are not names.
NON_NAME_BASES: tuple[str, ...] = (
    "deals",
    "offer",
    "shop",
    "cashback",
    "reward",
    "bnpl",
    "test",
    "user",
    "account",
    "pay",
    "lucky",
    "winner",
    "buyer",
    "order",
    "coupon",
    "promo",
    "free",
    "kart",
    "loot",
    "sale",
)
# Words some honest people use as their whole email local part.
HANDLE_WORDS: tuple[str, ...] = (
    "cool",
    "king",
    "rockstar",
    "smart",
    "sweet",
    "angel",
    "happy",
    "crazy",
    "lovely",
    "dude",
    "boss",
    "star",
    "tiger",
    "prince",
    "princess",
    "cute",
    "rocky",
    "sunny",
    "music",
    "cricket",
    "dhoni",
    "virat",
    "gamer",
    "travel",
    "foodie",
    "chotu",
    "bittu",
    "golu",
    "pinku",
    "munna",
)


def words(block: str) -> tuple[str, ...]:
    """Split a whitespace-separated block into a de-duplicated tuple, keeping order."""
    return tuple(dict.fromkeys(block.split()))
